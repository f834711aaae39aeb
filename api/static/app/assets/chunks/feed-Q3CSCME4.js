import{a,b}from"./chunk-DES2LOQY.js";import"./chunk-22O4BMVV.js";import"./chunk-RE3NNWKP.js";import"./chunk-G7BIL5LU.js";import"./chunk-6DHFEWGX.js";export{a as Feed,b as MyVideos};
